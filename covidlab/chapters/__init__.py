"""Chapter helpers: the code one chapter calls that no other chapter shares.

One module per chapter that needs one, named like its notebook (``covidx_net`` serves
``04_covidx_net.ipynb``). Chapter modules read the papers' facts (:mod:`covidlab.papers`) and
call the shared machinery (``data``, ``models``, ``train``, ``metrics`` ...); nothing outside
this package imports them.
"""
