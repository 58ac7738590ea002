"""``loyalty inspect``: sniff a raw export and propose its source config.

:mod:`.sample` reads a bounded head of each file and guesses the encoding and the dialect;
:mod:`.values` profiles each column's values (numbers, timestamps and their format, ids);
:mod:`.roles` says what each canonical field looks like and :mod:`.matching` finds it by header
names and value patterns; :mod:`.rules` guesses the cleaning rules (cancellation marker,
non-product codes); :mod:`.proposal` puts the guesses together and :mod:`.render` writes them
as commented YAML; :mod:`.summary` reads the whole export with the proposed config;
:mod:`.cadence` suggests label horizons and the cutoff step; :mod:`.inspection` runs it all.
"""
