"""reprolock audit: find what makes a training run unreproducible, before it runs."""
