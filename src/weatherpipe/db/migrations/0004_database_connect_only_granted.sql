-- Every role may connect to a new database (PostgreSQL grants CONNECT and TEMPORARY to PUBLIC).
-- This one is reached only by its owner, superusers, and the logins weatherpipe grants it to
-- (weatherpipe.db.roles: the batch's and the dashboard's logins of this deployment).
DO $$
BEGIN
    EXECUTE format('REVOKE CONNECT, TEMPORARY ON DATABASE %I FROM PUBLIC', current_database());
END $$;
