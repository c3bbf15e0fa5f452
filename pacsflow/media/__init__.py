"""Media types and bodies (PS3.18 8.6, 8.7): Accept, multipart in and out, byte ranges."""
