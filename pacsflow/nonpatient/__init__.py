"""The Non-Patient Instance (NPI) Service (PS3.18 Chapter 12): store, search, retrieve."""
