module example.com/rules_ko/examples/hello

go 1.19
