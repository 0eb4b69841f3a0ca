"""The built-in style models (see README.md here): installed as the fast_nst.models package."""
