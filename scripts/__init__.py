"""Developer scripts; `python3 -m scripts.<name>` runs the packages among them."""
