from reprolock._entry import main

# the usual exit, not console()'s: profilers and coverage that run
# "python -m reprolock" write their results at interpreter exit
main()
