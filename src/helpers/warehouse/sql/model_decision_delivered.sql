-- What each alert channel did with a decision's notice: JSON {channel: "sent" or the error}
-- (bound: delivered, decision_id).
UPDATE model_decisions SET delivered = ? WHERE decision_id = ?
