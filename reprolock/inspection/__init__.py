"""Looking at a training project: its code file set, its imports, its layout."""
