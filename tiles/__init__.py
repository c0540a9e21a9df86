"""Vector tiles (MVT), tile matrix sets, the tile cache and 3D Tiles of the white model."""
