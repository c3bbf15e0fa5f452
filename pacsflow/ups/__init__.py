"""The Worklist Service (UPS-RS, PS3.18 Chapter 11) with the semantics of PS3.4 Annex CC."""
