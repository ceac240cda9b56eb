-- Replace the catalog entry of the staged series (one row per series).
DELETE FROM series_catalog
USING stage_catalog
WHERE series_catalog.series_id = stage_catalog.series_id;

INSERT INTO series_catalog SELECT * FROM stage_catalog;
