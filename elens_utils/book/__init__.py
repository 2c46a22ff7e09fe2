"""The book's machinery: the chapter runner, chapter times, the headlines the introduction pastes."""
