from reprolock._entry import main

main()
