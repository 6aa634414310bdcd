"""The ``mailsift`` command line."""
