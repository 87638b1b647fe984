-- Two group roles hold the privileges; the login roles (names and passwords from settings)
-- are created outside the migrations (weatherpipe.db.roles) and made members of these.
-- Roles are shared by every database of a server, so creating them must tolerate both an
-- existing role and a concurrent migration of another database creating it.
DO $$
BEGIN
    CREATE ROLE weatherpipe_writer NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;
DO $$
BEGIN
    CREATE ROLE weatherpipe_reader NOLOGIN;
EXCEPTION WHEN duplicate_object OR unique_violation THEN NULL;
END $$;

GRANT USAGE ON SCHEMA public TO weatherpipe_writer, weatherpipe_reader;

GRANT SELECT, INSERT, UPDATE, DELETE
    ON daily_aggregate, processed_file, batch_run, quarantine TO weatherpipe_writer;
GRANT SELECT ON daily_weather, schema_version TO weatherpipe_writer;
GRANT USAGE ON ALL SEQUENCES IN SCHEMA public TO weatherpipe_writer;

GRANT SELECT ON daily_weather, daily_aggregate, processed_file, batch_run, quarantine
    TO weatherpipe_reader;
