from weatherpipe.cli import main

main()
