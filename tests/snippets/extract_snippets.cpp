// extract_snippets DOC OUT: writes every C++ code block of DOC (README.md or a public
// header) into OUT, a translation unit that the build compiles, so that the examples
// users copy from the documentation compile (STYLE.md: "Examples compile").
//
// What counts as a block:
//   - in a Markdown file, a fenced block whose info string starts with cpp, c++ or cxx;
//   - in a header, the same inside `///` doc comments (the `/// ` prefix is removed).
// A block that must not be compiled says so, visibly, with a reason:
//   ```cpp not-compiled: <why>
// A `not-compiled` marker without a reason is an error, so the exception stays rare.
//
// How a block becomes code: its declarations that only compile at namespace scope
// (lines starting with #include, struct, class, enum, namespace, template or
// FLUX_STRUCT, up to the end of the declaration) go first, at global scope; everything
// else becomes the body of a function `snippet_<line>::body()`, never called. The
// block may use the names of snippet_prelude.hpp (`pipeline`, `inc`, `use(...)`, ...)
// without declaring them. `#line` directives make compile errors point at DOC's lines.

#include <cctype>
#include <cstdio>
#include <cstdlib>
#include <fstream>
#include <iostream>
#include <sstream>
#include <string>
#include <vector>

namespace {

struct Line {
  int number;  // 1-based, in DOC
  std::string text;
};

struct Block {
  int fence_line;  // the line of the opening fence
  std::vector<Line> lines;
};

std::string trim_left(const std::string& s) {
  std::size_t i = s.find_first_not_of(" \t");
  return i == std::string::npos ? "" : s.substr(i);
}

std::string lower(std::string s) {
  for (char& c : s) c = static_cast<char>(std::tolower(static_cast<unsigned char>(c)));
  return s;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.compare(0, prefix.size(), prefix) == 0;
}

[[noreturn]] void fail(const std::string& doc, int line, const std::string& message) {
  std::cerr << doc << ":" << line << ": error: " << message << "\n";
  std::exit(1);
}

/// The C++ blocks of `doc`, read from `text_lines` (already stripped of `///` for headers).
std::vector<Block> find_blocks(const std::string& doc, const std::vector<Line>& text_lines) {
  std::vector<Block> blocks;
  const Line* open = nullptr;
  bool in_cpp = false;
  for (const Line& line : text_lines) {
    std::string t = trim_left(line.text);
    if (!starts_with(t, "```")) {
      if (open && in_cpp) blocks.back().lines.push_back(line);
      continue;
    }
    if (open) {  // a closing fence
      open = nullptr;
      continue;
    }
    open = &line;
    std::string info = lower(trim_left(t.substr(3)));
    in_cpp = starts_with(info, "cpp") || starts_with(info, "c++") || starts_with(info, "cxx");
    if (!in_cpp) continue;
    std::size_t marker = info.find("not-compiled");
    if (marker != std::string::npos) {
      std::string reason = info.substr(marker + std::string("not-compiled").size());
      if (reason.empty() || reason[0] != ':' || trim_left(reason.substr(1)).empty()) {
        fail(doc, line.number,
             "a not-compiled block must give its reason: ```cpp not-compiled: <why>");
      }
      in_cpp = false;
      continue;
    }
    blocks.push_back(Block{line.number, {}});
  }
  if (open) fail(doc, open->number, "this code block is never closed");
  return blocks;
}

/// Tracks brace and parenthesis depth across lines, ignoring string and character
/// literals and // comments. Returns the last code character of the line (0 if none).
char scan(const std::string& text, int& braces, int& parens) {
  char last = 0;
  for (std::size_t i = 0; i < text.size(); ++i) {
    char c = text[i];
    if (c == '/' && i + 1 < text.size() && text[i + 1] == '/') break;
    if (c == '"' || c == '\'') {
      for (++i; i < text.size() && text[i] != c; ++i) {
        if (text[i] == '\\') ++i;
      }
      last = c;
      continue;
    }
    if (c == '{') ++braces;
    if (c == '}') --braces;
    if (c == '(') ++parens;
    if (c == ')') --parens;
    if (!std::isspace(static_cast<unsigned char>(c))) last = c;
  }
  return last;
}

bool starts_namespace_scope_declaration(const std::string& text) {
  std::string t = trim_left(text);
  for (const char* prefix :
       {"#", "struct ", "class ", "enum ", "namespace ", "template", "FLUX_STRUCT("}) {
    if (starts_with(t, prefix)) return true;
  }
  return false;
}

std::string line_directive(int number, const std::string& doc) {
  return "#line " + std::to_string(number) + " \"" + doc + "\"\n";
}

void write_block(std::ostream& out, const std::string& doc, const Block& block) {
  std::string global, body;
  int braces = 0, parens = 0;
  bool in_global = false;       // inside a namespace-scope declaration
  bool body_continues = false;  // the previous line went to the body: no #line needed
  for (const Line& line : block.lines) {
    bool at_top = braces == 0 && parens == 0;
    if (at_top && !in_global && starts_namespace_scope_declaration(line.text)) {
      in_global = true;
      global += line_directive(line.number, doc);
    }
    char last = scan(line.text, braces, parens);
    if (in_global) {
      global += line.text + "\n";
      bool complete = braces == 0 && parens == 0 &&
                      (trim_left(line.text)[0] == '#' || last == ';' || last == '}' || last == ')');
      if (complete) in_global = false;
      body_continues = false;
    } else {
      if (!body_continues) body += line_directive(line.number, doc);
      body += line.text + "\n";
      body_continues = true;
    }
  }
  std::string ns = "snippet_" + std::to_string(block.fence_line);
  out << "\n// ---- the block at " << doc << ":" << block.fence_line << "\n";
  out << global;
  out << "#line " << block.fence_line << " \"" << doc << "\"\n";
  out << "namespace " << ns << " {\nusing namespace flux_snippet_prelude;\n"
      << "[[maybe_unused]] void body() {\n"
      << body << "}\n}  // namespace " << ns << "\n";
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    std::cerr << "usage: extract_snippets DOC OUT\n";
    return 2;
  }
  std::string doc = argv[1];
  std::ifstream in(doc);
  if (!in) fail(doc, 0, "cannot read it");
  bool is_header = doc.size() > 4 && doc.substr(doc.size() - 4) == ".hpp";

  std::vector<Line> lines;
  std::string text;
  for (int number = 1; std::getline(in, text); ++number) {
    if (is_header) {
      std::string t = trim_left(text);
      if (!starts_with(t, "///")) continue;  // code, or a comment that is not documentation
      t = t.substr(3);
      if (!t.empty() && t[0] == ' ') t = t.substr(1);
      text = t;
    }
    lines.push_back(Line{number, text});
  }

  std::ostringstream out;
  out << "// Generated by extract_snippets from " << doc << "; edit the documentation, not this.\n";
  if (is_header) {
    // The header first, on its own: a public header must compile by itself.
    std::string name = doc.substr(doc.find_last_of('/') + 1);
    out << "#include <flux/" << name << ">\n";
  }
  out << "#include \"snippet_prelude.hpp\"\n";
  for (const Block& block : find_blocks(doc, lines)) write_block(out, doc, block);

  std::ofstream file(argv[2]);
  file << out.str();
  return file ? 0 : 1;
}
