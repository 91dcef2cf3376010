"""What runs inside the image: the standard-library-only runtime checker and what the
build embeds for it under /.reprolock/."""
