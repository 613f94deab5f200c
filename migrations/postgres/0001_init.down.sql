DROP TABLE tasks;
DROP TABLE projects;
DROP TABLE sessions;
DROP TABLE users;
