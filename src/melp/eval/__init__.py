"""Evaluation (design.md "Evaluation"; melp-spec §6): the fixed, published protocol with intervals and baselines.

Modules: :mod:`~melp.eval.metrics` (AUROC, max-F1, accuracy), :mod:`~melp.eval.bootstrap` (seeded
95 % intervals), :mod:`~melp.eval.prompts` (the prompt bank), :mod:`~melp.eval.zeroshot`,
:mod:`~melp.eval.embed` (cached embedding extraction), :mod:`~melp.eval.probe` (linear probe),
:mod:`~melp.eval.finetune`, :mod:`~melp.eval.retrieval`, :mod:`~melp.eval.labeller` and
:mod:`~melp.eval.textgen` (report generation scores), :mod:`~melp.eval.results` (JSON, markdown,
scores CSV), :mod:`~melp.eval.random_baseline` (model loading and the random-encoder baseline),
:mod:`~melp.eval.runs` (the protocols as functions) and :mod:`~melp.eval.options` (shared CLI options).
"""
