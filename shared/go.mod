module github.com/rsgo/rsgo/shared

go 1.26
