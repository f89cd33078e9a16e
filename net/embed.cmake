# Turns a file into a C source defining `const unsigned char NAME[]` (with a trailing NUL, so
# an empty file still makes a valid array) and `const size_t NAME_len` (without the NUL).
# Usage: cmake -DIN=file -DOUT=file.c -DNAME=symbol -P embed.cmake   (no xxd needed)
file(READ "${IN}" hex HEX)
string(LENGTH "${hex}" hexlen)
math(EXPR len "${hexlen} / 2")
# Two hex digits per byte -> "0xNN,"; then a newline after every 16 bytes.
string(REGEX REPLACE "([0-9a-f][0-9a-f])" "0x\\1," bytes "${hex}")
string(REGEX REPLACE "((0x[0-9a-f][0-9a-f],){16})" "\\1\n    " bytes "${bytes}")
file(WRITE "${OUT}.tmp"
    "/* Generated from ${IN} by net/embed.cmake; do not edit. */\n"
    "#include <stddef.h>\n\n"
    "const unsigned char ${NAME}[] = {\n    ${bytes}0x00};\n"
    "const size_t ${NAME}_len = ${len};\n")
# Only touch the output when it changed, so an unchanged page does not relink.
execute_process(COMMAND ${CMAKE_COMMAND} -E copy_if_different "${OUT}.tmp" "${OUT}")
file(REMOVE "${OUT}.tmp")
