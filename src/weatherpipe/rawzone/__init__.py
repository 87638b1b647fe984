"""The raw zone: Kafka records stored exactly once in append-only NDJSON files.

`naming` maps a record to its file and parses a name back, `lines` turns a record into one NDJSON
line, `rotation` decides when a file is finished, `writer` writes and commits one file,
`recovery` finds where each partition resumes, `lag` what the raw zone still lacks of the topic,
`membership` who a writer is in its consumer group, and `consume_loop` ties them to a Kafka
consumer (`workers` runs several). `importer` adds a raw zone in the original project's layout
(`original_layout`) through the same writer: `envelope` places a line, `import_scan`,
`import_plan` and `import_log` are its steps.
"""
