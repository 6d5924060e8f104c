from modrun.cli.main import main

main()
