from gradsight.cli import main

main()
