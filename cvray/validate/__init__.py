"""Dataset QA: validation rules, leakage detection, leak-free splits, dataset cards, converters.

Pure cores (no Ray): :mod:`rules` (catalogue), :mod:`images`, :mod:`schema`, :mod:`boxes`,
:mod:`masks`, :mod:`classes`, :mod:`leakage`, :mod:`split`, :mod:`card`, :mod:`baselines`,
:mod:`convert`, :mod:`pipeline`; the Ray Data adapter is :mod:`distributed`. None of them imports
:mod:`cvray.config` (which pulls in every stage, torch included): Ray workers stay light.
"""
