from agi_credit.cli import main

main()
