"""Dataset QA: validation rules, leakage detection, leak-free splits, dataset cards, converters.

Pure cores (no Ray): :mod:`rules` (catalogue), :mod:`images`, :mod:`schema`, :mod:`boxes`,
:mod:`masks`, :mod:`classes`, :mod:`leakage`, :mod:`split`, :mod:`card`, :mod:`baselines`,
:mod:`convert`, :mod:`reference` (the in-process reference); the Ray Data adapter is :mod:`distributed`. They import nothing
heavy (no torch, no Ray), so Ray workers that check images start fast.
"""
