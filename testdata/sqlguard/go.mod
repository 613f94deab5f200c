module example.com/sqlguard

go 1.26
