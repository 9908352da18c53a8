from caseextract.cli import main

main()
