from qdsketch.cli import main

main()
