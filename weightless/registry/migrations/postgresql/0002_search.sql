-- Search: each sort order (all keys descending, ties broken by info_hash) is one index read
-- backwards, alone or after an exact category or publisher.
DROP INDEX registry_created_at;
DROP INDEX registry_completions;
DROP INDEX registry_seeders;
DROP INDEX registry_category;
DROP INDEX registry_publisher;
CREATE INDEX registry_created_at ON registry (created_at, info_hash);
CREATE INDEX registry_completions ON registry (completions, created_at, info_hash);
CREATE INDEX registry_seeders ON registry (seeders, created_at, info_hash);
CREATE INDEX registry_category ON registry (category, created_at, info_hash);
CREATE INDEX registry_publisher ON registry (publisher, created_at, info_hash);

-- Substring search (ILIKE '%q%' on name and tags) through trigram indexes, where pg_trgm can
-- be had: created if this role may (a trusted extension since PostgreSQL 13), else searches scan.
DO $$
DECLARE
    ext_schema name;
BEGIN
    IF NOT EXISTS (SELECT 1 FROM pg_extension WHERE extname = 'pg_trgm') THEN
        BEGIN
            CREATE EXTENSION pg_trgm;
        EXCEPTION WHEN OTHERS THEN
            RAISE NOTICE 'pg_trgm is not available (%): substring search will scan', SQLERRM;
        END;
    END IF;
    SELECT n.nspname INTO ext_schema
        FROM pg_extension e JOIN pg_namespace n ON n.oid = e.extnamespace
        WHERE e.extname = 'pg_trgm';
    IF ext_schema IS NOT NULL THEN
        EXECUTE format('CREATE INDEX registry_name_trgm ON registry USING gin (name %I.gin_trgm_ops)', ext_schema);
        EXECUTE format('CREATE INDEX registry_tags_trgm ON registry USING gin (tags %I.gin_trgm_ops)', ext_schema);
    END IF;
END
$$;
