SELECT * FROM series_catalog WHERE series_id = ?
