"""Small modules every package of chatforge may import: the run journal, where chatforge
keeps its files, and the on-disk contracts (corpus folder, metrics log) that one package
writes and another reads.

Design decisions:
- This package sits on no part of the architecture (`backend`, `ui`, `training`, `evals`,
  `bench` all stand above it), so it imports none of them and only the standard library:
  the UI's Cloud Run image, which has no ML stack, imports it too.
- A contract lives here when two parts that must not import each other both need it
  (training writes a corpus folder, evals read it); the writer's logic stays with its part.
"""
