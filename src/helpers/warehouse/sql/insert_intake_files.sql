-- Record the staged inbox files; a file already recorded (same content hash) is not recorded again.
INSERT INTO intake_files
SELECT * FROM stage_intake_files AS s
WHERE NOT EXISTS (SELECT 1 FROM intake_files AS f WHERE f.file_sha256 = s.file_sha256);
