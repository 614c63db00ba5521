"""The generated protocol header (deploy/gen_proto.py); a package only so that a wheel carries it."""
