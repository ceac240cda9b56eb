SELECT * FROM {table} WHERE 1 = 0
