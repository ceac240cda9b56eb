-- One inbox file's record by its content hash (bound: file_sha256).
SELECT * FROM intake_files WHERE file_sha256 = ?
