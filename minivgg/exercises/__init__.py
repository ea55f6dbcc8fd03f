"""Exercises: cs231n assignment 2's ``layers.py`` as a workspace that minivgg writes, loads and grades.

:func:`new_workspace` writes the stubs (:mod:`.template`); :func:`load_student`
imports the student's file safely; :func:`check_module` grades it against
:mod:`minivgg.ops` and :mod:`minivgg.gradcheck`; :mod:`.report` formats the result.
"""

from .checks import EXERCISES, FAIL, NOT_IMPLEMENTED, PASS, ExerciseResult, check_exercise, check_module
from .loader import LoadResult, load_student
from .report import as_dict, as_table
from .workspace import new_workspace

__all__ = ["EXERCISES", "PASS", "FAIL", "NOT_IMPLEMENTED", "ExerciseResult", "check_exercise", "check_module",
           "LoadResult", "load_student", "as_dict", "as_table", "new_workspace"]
