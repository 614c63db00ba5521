"""C sources of the firmware; a package only so that a wheel carries them."""
