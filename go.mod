module github.com/pacswatch/pacswatch

go 1.26.8
