// Where the OpenID provider sends the browser back: exchange the code for a token.
"use strict";
PF.finishSignIn().catch(PF.showError);
