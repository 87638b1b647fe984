"""One module per `weatherpipe` subcommand; each only parses options and calls the library."""
