from sharedcare.cli import main

main()
