-- GET /api/registry/meta is a lookup: the JSON view of the stored .torrent, computed once when the
-- file is stored (rows stored before this migration get it at their first /meta, off the reactor).
ALTER TABLE registry ADD COLUMN meta TEXT;
