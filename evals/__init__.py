"""chatforge evals: suites (data + scorer) run on a live server or a checkpoint folder.

Entry points: `python -m evals list | run | compare | report` (evals.cli), and from Python
`evals.runner.run_suite(name, target, SuiteConfig(...))` or
`evals.runner.run_on_checkpoint(folder, "docs-qa")`. The run journal is `chatforge.journal`.
"""
