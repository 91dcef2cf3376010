from reprolock._entry import console

console()
