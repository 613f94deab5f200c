DROP TABLE account_countries;
DROP TABLE audit_head;
DROP TABLE audit_events;
