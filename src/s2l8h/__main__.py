from s2l8h.cli import main

main()
