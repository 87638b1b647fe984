"""The raw zone: Kafka records stored exactly once in append-only NDJSON files.

`naming` maps a record to its file and parses a name back, `listing` finds the finished files,
`lines` turns a record into one NDJSON line, `rotation` decides when a file is finished,
`writer` writes and commits one file, `agreement` checks that a file's content matches its name,
`sink` keeps each partition's open file and commits them in order, `recovery` finds where each
partition resumes, `lag` what the raw zone still lacks of the topic, `membership` who a writer is
in its consumer group, and `consume_loop` ties them to a Kafka consumer; `workers` runs several
consumers in parallel processes. `importer` adds a raw zone in the original project's layout
(`original_layout`) through the same writer: `envelope` places a line, `import_scan`,
`import_plan` and `import_log` are its steps.
"""
