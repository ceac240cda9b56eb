INSERT INTO quarantine SELECT * FROM stage_quarantine
