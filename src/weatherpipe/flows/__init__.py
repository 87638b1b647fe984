"""Orchestration: the lab flow (`run`), normal operation (`serve`) and schedules.

Flows sequence the stages each command runs on its own; they reach the platform through its
public functions and the user through `ui` (progress lines, stage summaries), never directly.
"""
